#!/usr/bin/env bash
# EMR bootstrap action: on every node, the job (same wheel as the launcher) in a Python 3.11
# venv, and Beam's Python SDK worker pool on localhost:50000 for the EXTERNAL environment.
#   --bootstrap-actions Path=s3://BUCKET/profile-dedup/bootstrap-worker-pool.sh,Args=[s3://BUCKET/profile-dedup/profile_dedup-0.1.0-py3-none-any.whl]
set -euo pipefail
WHEEL_URI=$1
VENV=/opt/profile-dedup/venv
sudo dnf install -y -q python3.11 python3.11-pip
sudo mkdir -p /opt/profile-dedup && sudo chown "$(id -u):$(id -g)" /opt/profile-dedup
python3.11 -m venv "$VENV"
aws s3 cp "$WHEEL_URI" /opt/profile-dedup/
"$VENV/bin/pip" install --quiet "/opt/profile-dedup/$(basename "$WHEEL_URI")" "apache-beam[aws]==2.77.0"
# Beam's worker pool starts its workers as plain `python`: the venv's bin must come first on PATH.
sudo tee /etc/systemd/system/beam-worker-pool.service >/dev/null <<UNIT
[Unit]
Description=Beam Python SDK worker pool (EXTERNAL environment) for profile-dedup
After=network-online.target

[Service]
Environment=PATH=$VENV/bin:/usr/local/bin:/usr/bin
WorkingDirectory=/tmp
ExecStart=$VENV/bin/python -m apache_beam.runners.worker.worker_pool_main --service_port=50000
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
sudo systemctl daemon-reload
sudo systemctl enable --now beam-worker-pool.service
