#!/usr/bin/env python3
"""Writes cargo-v6/templates/node/session_state.parquet: the session state file vantage6-node 5.0.3
creates up front in each session folder (`SessionFileManager._create_session_state_file` in
`vantage6/node/k8s/session_manager.py`), written with pyarrow as the node writes it, with a
placeholder creation time that cargo v6 replaces by the run's (`vantage6::session_state_parquet`).

Usage (any Python >= 3.9 with pyarrow): python3 scripts/session-state-parquet.py OUT.parquet
"""
import datetime
import sys

import pyarrow as pa
import pyarrow.parquet as pq

# Keep in step with SESSION_STATE_PLACEHOLDER_MICROS in cargo-v6/src/vantage6.rs.
PLACEHOLDER = datetime.datetime(2001, 2, 3, 4, 5, 6, 70809, tzinfo=datetime.timezone.utc)

table = pa.table(
    {
        "action": [""],
        "file": ["session_state.parquet"],
        "timestamp": [PLACEHOLDER],
        "message": ["Created this session file."],
        "dataframe": [""],
    }
)
pq.write_table(table, sys.argv[1])
