"""Beam's DaskRunner, fixed for this pipeline: ``--runner pipeline.dask_runner.DaskRunner``.

Beam's own ``apache_beam.runners.dask.dask_runner.DaskRunner`` (2.77) cannot run this job:

1. tagged outputs are not separated: every consumer of a ``with_outputs`` ParDo receives the
   main *and* all tagged outputs (``ReadProfiles``' rejected lines reach the profiles branch:
   ``KeyError: 'ProfileId'``);
2. outputs emitted in ``finish_bundle`` are dropped (the results are collected before
   ``finish_bundle`` runs), which loses ``WriteToText``'s bundle results and any batching DoFn;
3. only the bag of the *last* transform is computed, so of several sinks (this job writes
   seven files) all but one are silently skipped;
4. a side input is handed to every partition as a lazy bag that each task computes again
   (the fitted model, a singleton, is re-estimated once per partition).

This module keeps Beam's translations of Create, GroupByKey and Flatten and its
``DaskOptions`` (``--dask_client_address``, ``--dask_npartitions``...), and replaces the
visitor: a ParDo's bag holds ``(tag, value)`` pairs that each consumer filters by its tag, a
bundle's outputs are collected after ``finish_bundle``, side inputs are one reduction shared by
every partition, every leaf is computed, and GroupByKey spreads its output over the cluster
(``--dask_npartitions``, default: the number of worker threads) so the stages after a shuffle
run in parallel. Limits: global windows only, no state or timers, no metrics (this batch job
uses none of them; side inputs and CombineGlobally work).

The Dask workers need this package installed (the worker image, or ``pip install`` of the
wheel): the DaskRunner stages nothing, so ``--setup_file`` and ``--extra_package`` have no
effect on it.
"""
from __future__ import annotations

import functools

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.pipeline import PipelineVisitor
from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, Receiver, _OutputHandler
from apache_beam.runners.dask import dask_runner as _beam_dask
from apache_beam.runners.dask import transform_evaluator as _evaluators
from apache_beam.runners.dask.overrides import _GroupByKeyOnly, dask_overrides
from apache_beam.transforms import userstate
from apache_beam.transforms.core import DoFn
from apache_beam.transforms.sideinputs import SideInputMap
from apache_beam.transforms.window import GlobalWindow, GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

DaskOptions = _beam_dask.DaskOptions


def _in_global_window(value):
    return WindowedValue(value, 0, (GlobalWindow(),))


def _unwindowed(value):
    return value.value if isinstance(value, WindowedValue) else value


class _TagReceiver(Receiver):
    def __init__(self, tag, out):
        self.tag, self.out = tag, out

    def receive(self, windowed_value):
        self.out.append((self.tag, _unwindowed(windowed_value)))


class _Receivers(dict):
    """Tag -> receiver; every receiver appends ``(tag, value)`` to one list."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def __missing__(self, tag):
        self[tag] = _TagReceiver(tag, self.out)
        return self[tag]


class _DoFnSpec:
    """What a bundle task needs, in one opaque object (a dask graph must not look inside)."""

    def __init__(self, fn, label, args, kwargs, window_fn, side_views):
        self.fn, self.label, self.args, self.kwargs = fn, label, args, kwargs
        self.window_fn, self.side_views = window_fn, side_views


def _run_bundle(items, spec: _DoFnSpec, *side_values):
    """One dask partition = one Beam bundle; returns ``[(tag, value), ...]``."""
    out: list = []
    receivers = _Receivers(out)
    handler = _OutputHandler(
        window_fn=spec.window_fn, main_receivers=receivers[None], tagged_receivers=receivers,
        per_element_output_counter=None, output_batch_converter=None,
        process_yields_batches=False, process_batch_yields_elements=False)
    side_inputs = [SideInputMap(view_class, view_options, [_in_global_window(v) for v in values])
                   for (view_class, view_options), values in zip(spec.side_views, side_values)]
    invoker = DoFnInvoker.create_invoker(
        DoFnSignature(spec.fn), handler, context=DoFnContext(spec.label, state=None),
        side_inputs=side_inputs, input_args=list(spec.args), input_kwargs=dict(spec.kwargs),
        user_state_context=None, bundle_finalizer_param=DoFn.BundleFinalizerParam())
    invoker.invoke_setup()
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(_in_global_window(item))
    invoker.invoke_finish_bundle()
    invoker.invoke_teardown()
    return out


def _has_tag(tag, pair):
    return pair[0] == tag


def _value(pair):
    return pair[1]


def _group_key(item):
    return item[0]


def _grouped_values(item):
    key, pairs = item
    return key, [_unwindowed(pair[1]) for pair in pairs]


def _as_list(items):
    return list(items)


def _concat(parts):
    return [item for part in parts for item in part]


class DaskRunner(_beam_dask.DaskRunner):
    """Executes a batch pipeline on a dask.distributed cluster (see the module docstring)."""

    def run_pipeline(self, pipeline, options):
        try:
            import dask.distributed as ddist
        except ImportError as error:  # pragma: no cover - depends on the extra
            raise ImportError("the DaskRunner needs apache-beam[dask]") from error

        dask_options = options.view_as(DaskOptions).get_all_options(drop_default=True, current_only=True)
        bag_kwargs = DaskOptions._extract_bag_kwargs(dask_options)
        client = ddist.Client(**dask_options)
        shuffle_partitions = bag_kwargs.get("npartitions") or max(2, sum(client.nthreads().values()))
        pipeline.replace_all(dask_overrides())
        visitor = _BagVisitor(bag_kwargs, shuffle_partitions)
        pipeline.visit(visitor)
        leaves = [bag for node, bag in visitor.bags.items() if node not in visitor.consumed]
        # optimize_graph=False: dask's fusion renames shared tasks and computes them again.
        futures = client.compute(leaves, optimize_graph=False)
        return _beam_dask.DaskRunnerResult(client, futures)


class _BagVisitor(PipelineVisitor):
    def __init__(self, bag_kwargs: dict, shuffle_partitions: int):
        self.bag_kwargs = bag_kwargs
        self.shuffle_partitions = shuffle_partitions
        self.bags: dict = {}       # AppliedPTransform -> dask bag
        self.tagged: set = set()   # producers whose bag holds (tag, value) pairs
        self.consumed: set = set()

    def bag_of(self, pcoll):
        producer = pcoll.producer
        self.consumed.add(producer)
        bag = self.bags[producer]
        if producer in self.tagged:
            bag = bag.filter(functools.partial(_has_tag, pcoll.tag)).map(_value)
        return bag

    def visit_transform(self, node) -> None:
        transform = node.transform
        kind = type(transform)
        inputs = [i for i in node.inputs if not isinstance(i, pvalue.PBegin)]
        for output in node.outputs.values():
            windowing = getattr(output, "windowing", None)
            if windowing is not None and not isinstance(windowing.windowfn, GlobalWindows):
                raise NotImplementedError(f"DaskRunner: {node.full_label} is not in the global window")
        if kind is beam.ParDo:
            self.bags[node] = self._pardo(node, transform, inputs)
            self.tagged.add(node)
        elif kind is _GroupByKeyOnly:
            (bag,) = [self.bag_of(i) for i in inputs]
            partitions = max(bag.npartitions, self.shuffle_partitions)
            self.bags[node] = bag.groupby(_group_key, npartitions=partitions).map(_grouped_values)
        elif kind in _evaluators.TRANSLATIONS:  # Create, Flatten
            op = _evaluators.TRANSLATIONS[kind](node, bag_kwargs=self.bag_kwargs)
            bags = [self.bag_of(i) for i in inputs]
            self.bags[node] = op.apply(bags if isinstance(op, _evaluators.Flatten) else (bags[0] if bags else None))
        else:  # Beam's NoOp cases: Reshuffle, WindowInto (global), GroupAlsoByWindow (global)
            bags = [self.bag_of(i) for i in inputs]
            if len(bags) != 1:
                raise NotImplementedError(f"DaskRunner: no translation for {node.full_label} ({kind.__name__})")
            self.bags[node] = bags[0]

    def _pardo(self, node, transform, inputs):
        from dask.bag.core import Bag
        from dask.base import tokenize
        from dask.highlevelgraph import HighLevelGraph

        if userstate.is_stateful_dofn(transform.fn):
            raise NotImplementedError(f"DaskRunner: {node.full_label} uses state or timers")
        (main,) = [self.bag_of(i) for i in inputs]
        side_views, side_items = [], []
        for side in node.side_inputs:
            side_views.append((type(side), side._view_options()))
            side_items.append(self.bag_of(side.pvalue).reduction(_as_list, _concat, split_every=False))
        main_pcoll = next(iter(node.main_inputs.values()))
        window_fn = main_pcoll.windowing.windowfn if hasattr(main_pcoll, "windowing") else None
        args, kwargs = transform.raw_side_inputs
        spec = _DoFnSpec(transform.fn, transform.label, list(args), dict(kwargs), window_fn, side_views)
        # A hand-built layer: passing the side inputs as dask Items to map_partitions would
        # "finalize" (copy) their whole upstream graph once per consumer.
        name = "beam-" + tokenize(node.full_label, main.name, *[item.key for item in side_items])
        layer = {(name, i): (_run_bundle, (main.name, i), spec, *[item.key for item in side_items])
                 for i in range(main.npartitions)}
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[main, *side_items])
        return Bag(graph, name, main.npartitions)
