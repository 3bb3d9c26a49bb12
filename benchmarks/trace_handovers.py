"""Run the job with every hand-over of data between Beam's runner and its workers weighed in bytes.

A diagnostic for the data the DirectRunner's multi_processing mode has lost between steps (README,
"What lands in --output"). It wraps Beam 2.77's FnApiRunner internals, in this process and, through a
``sitecustomize`` put on the workers' ``PYTHONPATH``, in each worker process, and records:

- runner side: the bytes of every buffer between stages (as received from the workers, as appended,
  as partitioned among the workers), and the bytes sent to and received from each bundle;
- worker side: the bytes each bundle received on each input and sent on each output, and how many
  elements each input decoded.

Then it prints every place where the two sides of a hand-over disagree, and writes it all to
``--trace`` (JSON). The job's own arguments follow ``--``. The wrappers reach into Beam's private
classes: they are tied to the Beam version pinned by the project, and this is a tool, not the job.

    python benchmarks/trace_handovers.py --trace trace.json -- --input p.jsonl --output out \\
        --direct_running_mode multi_processing --direct_num_workers 2
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Loaded by every worker process (through PYTHONPATH): the worker side of the trace, from this module.
WORKER_HOOK = f"""import os, sys
if os.environ.get("TRACE_HANDOVERS_DIR") and "WORKER_ID" in os.environ:
    sys.path.insert(0, {str(ROOT)!r})
    from benchmarks.trace_handovers import trace_worker
    trace_worker(os.environ["TRACE_HANDOVERS_DIR"], os.environ["WORKER_ID"])
"""


def count_data_inputs(on_data, on_end=None) -> None:
    """Wrap Beam's gRPC data channel so that every data element it hands a bundle is weighed:
    ``on_data(bundle, transform, bytes)`` per element, ``on_end(bundle, expected inputs, bytes by
    transform)`` when the bundle's inputs are done. Used on both sides of the channel."""
    from apache_beam.runners.worker import data_plane

    original = data_plane._GrpcDataChannel.input_elements

    def input_elements(self, instruction_id, expected_inputs, abort_callback=None):
        received: collections.Counter = collections.Counter()
        try:
            for element in original(self, instruction_id, expected_inputs, abort_callback=abort_callback):
                if element.DESCRIPTOR.name == "Data":
                    received[element.transform_id] += len(element.data)
                    on_data(instruction_id, element.transform_id, len(element.data))
                yield element
        finally:
            if on_end:
                on_end(instruction_id, expected_inputs, received)
    data_plane._GrpcDataChannel.input_elements = input_elements


def trace_worker(directory: str, worker_id: str) -> None:
    """In a worker process: record, as JSON lines in ``directory``, the bytes each bundle received on
    each input and sent on each output, and how many elements each input decoded."""
    from apache_beam.runners.worker import bundle_processor, data_plane

    lock = threading.Lock()
    path = os.path.join(directory, f"worker-{worker_id}-{os.getpid()}.jsonl")

    def record(**entry):
        with lock, open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def inputs_done(bundle, expected, received):
        for transform in expected:
            if isinstance(transform, str):
                record(side="worker", what="input", bundle=bundle, transform=transform, bytes=received[transform])
    count_data_inputs(lambda *_: None, inputs_done)

    outputs = data_plane._GrpcDataChannel.output_stream

    def output_stream(self, instruction_id, transform_id):
        stream = outputs(self, instruction_id, transform_id)
        sent = [0]
        flush, close = stream._flush_callback, stream._close_callback

        def counted_flush(data):
            sent[0] += len(data)
            return flush(data)

        def counted_close(data):
            sent[0] += len(data)
            record(side="worker", what="output", bundle=instruction_id, transform=transform_id, bytes=sent[0])
            return close(data)
        stream._flush_callback, stream._close_callback = counted_flush, counted_close
        return stream
    data_plane._GrpcDataChannel.output_stream = output_stream

    process_bundle = bundle_processor.BundleProcessor.process_bundle

    def traced_process_bundle(self, instruction_id, data_stream_id=None):
        try:
            return process_bundle(self, instruction_id, data_stream_id)
        finally:
            for op in self.ops.values():
                if isinstance(op, bundle_processor.DataInputOperation):
                    record(side="worker", what="decoded", bundle=instruction_id, transform=op.transform_id,
                           elements=op.index, stop=str(op.stop))
    bundle_processor.BundleProcessor.process_bundle = traced_process_bundle


class RunnerTrace:
    """Wraps the FnApiRunner's buffers and bundle manager in this process; ``report()`` gives the trace."""

    def __init__(self):
        from apache_beam.runners.portability.fn_api_runner import execution, fn_runner
        self._lock = threading.Lock()
        self.buffer_name: dict[int, str] = {}
        self.appended: collections.Counter = collections.Counter()
        self.partitioned: list[dict] = []
        self.sent: collections.Counter = collections.Counter()
        self.received: collections.Counter = collections.Counter()
        self.stage_of: dict[str, str] = {}
        self.outputs_of: dict[str, dict] = {}
        trace = self

        get_buffer = execution.BundleContextManager.get_buffer

        def named_get_buffer(self, buffer_id, transform_id):
            buffer = get_buffer(self, buffer_id, transform_id)
            trace.buffer_name[id(buffer)] = buffer_id.decode() if isinstance(buffer_id, bytes) else str(buffer_id)
            return buffer
        execution.BundleContextManager.get_buffer = named_get_buffer

        for cls in (execution.ListBuffer, execution.GroupingBuffer):
            def counted_append(self, data, _append=cls.append):
                _append(self, data)
                trace.appended[trace.buffer_name.get(id(self), "unnamed")] += len(data)
            cls.append = counted_append

        copy = execution.ListBuffer.copy

        def named_copy(self):
            new = copy(self)
            trace.buffer_name[id(new)] = trace.buffer_name.get(id(self), "unnamed")
            return new
        execution.ListBuffer.copy = named_copy

        partition = execution.ListBuffer.partition

        def counted_partition(self, n):
            parts = partition(self, n)
            trace.partitioned.append({"buffer": trace.buffer_name.get(id(self), "unnamed"),
                                      "bytes": sum(len(chunk) for chunk in self._inputs),
                                      "parts": [sum(len(chunk) for chunk in part) for part in parts]})
            return parts
        execution.ListBuffer.partition = counted_partition

        send = fn_runner.BundleManager._send_input_to_worker

        def counted_send(self, process_bundle_id, read_transform_id, byte_streams):
            streams = list(byte_streams or [])
            with trace._lock:
                trace.sent[(process_bundle_id, read_transform_id)] += sum(len(s) for s in streams)
                stage = self.bundle_context_manager.stage.name
                trace.stage_of[process_bundle_id] = stage
                trace.outputs_of.setdefault(stage, {
                    transform: buffer.decode() if isinstance(buffer, bytes) else str(buffer)
                    for transform, buffer in self.bundle_context_manager.stage_data_outputs.items()})
            return send(self, process_bundle_id, read_transform_id, streams)
        fn_runner.BundleManager._send_input_to_worker = counted_send

        def on_data(bundle, transform, n):
            with trace._lock:
                trace.received[(bundle, transform)] += n
        count_data_inputs(on_data)

    def report(self, worker_dir: Path) -> dict:
        worker = [json.loads(line) for path in sorted(worker_dir.glob("worker-*.jsonl"))
                  for line in path.read_text().splitlines()]
        buffer_of = {key: self.outputs_of.get(self.stage_of.get(key[0], ""), {}).get(key[1])
                     for key in self.received}
        return {
            "problems": disagreements(self.sent, self.received, buffer_of, self.appended, self.partitioned, worker),
            "runner": {"appended": dict(self.appended), "partitioned": self.partitioned,
                       "sent": [[b, t, n, self.stage_of.get(b)] for (b, t), n in self.sent.items()],
                       "received": [[b, t, n, self.stage_of.get(b)] for (b, t), n in self.received.items()]},
            "worker": worker,
        }


def disagreements(sent: dict, received: dict, buffer_of: dict, appended: dict, partitioned: list,
                  worker: list[dict]) -> list[str]:
    """Where the two sides of a hand-over weigh it differently.

    ``sent`` / ``received``: bytes the runner sent to / received from ``(bundle, transform)``;
    ``buffer_of``: the buffer between stages each received ``(bundle, transform)`` goes into;
    ``appended``: bytes appended to each buffer; ``partitioned``: ``{"buffer", "bytes", "parts"}``
    each time a buffer was split among the workers; ``worker``: the workers' records."""
    problems = []
    for entry in worker:
        key = (entry["bundle"], entry["transform"])
        if entry["what"] == "output" and received.get(key, 0) != entry["bytes"]:
            problems.append(f"{key}: the worker sent {entry['bytes']} bytes, the runner received {received.get(key, 0)}")
        if entry["what"] == "input" and sent.get(key, 0) != entry["bytes"]:
            problems.append(f"{key}: the runner sent {sent.get(key, 0)} bytes, the worker received {entry['bytes']}")
    into: collections.Counter = collections.Counter()
    for key, n in received.items():
        if buffer_of.get(key):
            into[buffer_of[key]] += n
    for buffer, n in sorted(into.items()):
        if appended.get(buffer, 0) != n:
            problems.append(f"{buffer}: received {n} bytes, appended {appended.get(buffer, 0)}")
    for p in partitioned:
        if sum(p["parts"]) != p["bytes"]:
            problems.append(f"{p['buffer']}: partitioned {p['bytes']} bytes into parts of {p['parts']}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", required=True, help="where to write the trace (JSON)")
    parser.add_argument("job", nargs=argparse.REMAINDER, help="-- then the job's arguments")
    args = parser.parse_args(argv)
    job = args.job[1:] if args.job[:1] == ["--"] else args.job
    hook_dir = Path(tempfile.mkdtemp(prefix="trace-handovers-"))
    (hook_dir / "sitecustomize.py").write_text(WORKER_HOOK)
    worker_dir = hook_dir / "workers"
    worker_dir.mkdir()
    # The runner starts its workers later, with this process's environment.
    os.environ["TRACE_HANDOVERS_DIR"] = str(worker_dir)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hook_dir), os.environ.get("PYTHONPATH")]))
    trace = RunnerTrace()
    from pipeline.run import main as run_job

    code = run_job(job)
    report = trace.report(worker_dir)
    Path(args.trace).write_text(json.dumps(report, indent=1))
    hand_overs = len(report["runner"]["sent"]) + len(report["runner"]["received"])
    print(f"hand-overs weighed: {hand_overs} on the runner's side, {len(report['worker'])} on the workers'; "
          f"disagreements: {len(report['problems'])}")
    for problem in report["problems"]:
        print("  " + problem)
    return code or (5 if report["problems"] else 0)


if __name__ == "__main__":
    sys.exit(main())
