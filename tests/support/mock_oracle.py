"""vantage6's own mock of a federation, as the oracle for `cargo v6 run CENTRAL --org ...`.

Usage:
    python mock_oracle.py --module NAME [--path DIR] --method CENTRAL [--kwargs JSON]
                          --org ID=PATH[:TYPE] [--org ID:LABEL=PATH[:TYPE]]...
                          [--extract METHOD] [--env NAME=VALUE]...

Runs the central function CENTRAL of the algorithm module NAME in-process with vantage6's mock
(vantage6-algorithm-tools 4.x: `MockAlgorithmClient`; 5.x: `MockNetwork`), over one organization
per `--org` ID, and prints its result as one line of JSON on stdout (the only line there: the
algorithm's own `info` lines are sent to stderr). Run it with the interpreter of a venv that
`scripts/stack up` makes: V6_MOCK_PYTHON_4 (4.15.2) or V6_MOCK_PYTHON_5 (5.0.3); the venv's
vantage6-algorithm-tools decides which mock runs.

- `--path DIR` goes first on sys.path (a project whose module folder is at its root, as the
  vantage6 repositories have it: `v6-summary-py/`, imported by that name); without it, NAME must be
  importable in the venv.
- `--org ID=PATH` gives organization ID one database labelled `default`; `--org ID:LABEL=PATH`
  adds a database with that label. Repeat per database and organization; organizations keep the
  order of their first `--org` and the central function runs at the first. TYPE is the database
  type (default: the file's extension: csv, parquet, excel for .xlsx/.xls).
- 4.x: each organization's databases are its datasets, in order (4.x has no labels).
  5.x: with `--extract METHOD` each label becomes a session dataframe of that name made by the
  data extraction METHOD (`client.dataframe.create`); without it each file is read with pandas
  and given as the dataframe (what the repositories' own 5.x tests do). The central task gets
  one dataframe per label, in order of first appearance.
- `--env NAME=VALUE` sets an environment variable for the whole run as a node's
  `algorithm_env` does, base32-encoded as the node encodes it (`get_env_var` decodes it).

Exit status: 0 with the result, 1 when the algorithm fails, 2 for bad arguments.
"""

import argparse
import base64
import contextlib
import importlib.metadata
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_LABEL = "default"
TYPES_BY_SUFFIX = {".csv": "csv", ".parquet": "parquet", ".xlsx": "excel", ".xls": "excel"}
KNOWN_TYPES = {"csv", "parquet", "excel", "sql", "sparql", "omop", "other"}


@dataclass
class Database:
    label: str
    path: Path
    db_type: str


@dataclass
class Organization:
    id: int
    databases: list[Database] = field(default_factory=list)


def usage_error(message: str):
    print(f"mock_oracle: error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_org(value: str) -> tuple[int, Database]:
    """`ID=PATH[:TYPE]` or `ID:LABEL=PATH[:TYPE]`."""
    key, sep, location = value.partition("=")
    if not sep or not location:
        usage_error(f"--org {value}: expected ID=PATH or ID:LABEL=PATH")
    id_text, _, label = key.partition(":")
    label = label or DEFAULT_LABEL
    try:
        org_id = int(id_text)
    except ValueError:
        usage_error(f"--org {value}: the organization id `{id_text}` is not a number")
    path_text, colon, db_type = location.rpartition(":")
    if not colon or db_type not in KNOWN_TYPES:
        path_text, db_type = location, None
    path = Path(path_text).resolve()
    if not path.exists():
        usage_error(f"--org {value}: {path} does not exist")
    db_type = db_type or TYPES_BY_SUFFIX.get(path.suffix.lower())
    if db_type is None:
        usage_error(f"--org {value}: cannot tell the type of {path.name}: write PATH:TYPE")
    return org_id, Database(label, path, db_type)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", required=True, help="the algorithm's module (PKG_NAME)")
    parser.add_argument("--path", type=Path, help="a folder to put first on sys.path")
    parser.add_argument("--method", required=True, help="the central function")
    parser.add_argument("--kwargs", default="{}", help="its keyword arguments, a JSON object")
    parser.add_argument("--org", action="append", default=[], metavar="ID[:LABEL]=PATH[:TYPE]")
    parser.add_argument("--extract", metavar="METHOD", help="5.x: the data extraction function")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    try:
        args.kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as e:
        usage_error(f"--kwargs is not JSON: {e}")
    if not isinstance(args.kwargs, dict):
        usage_error("--kwargs must be a JSON object")
    organizations: dict[int, Organization] = {}
    for value in args.org:
        org_id, database = parse_org(value)
        org = organizations.setdefault(org_id, Organization(org_id))
        if any(d.label == database.label for d in org.databases):
            usage_error(f"--org {value}: organization {org_id} has `{database.label}` twice")
        org.databases.append(database)
    if not organizations:
        usage_error("give at least one --org")
    args.organizations = list(organizations.values())
    for value in args.env:
        name, sep, _ = value.partition("=")
        if not sep or not name:
            usage_error(f"--env {value}: expected NAME=VALUE")
    return args


def node_encoded(value: str) -> str:
    """As the node encodes `algorithm_env` values (base32, `=` written as `!`)."""
    return base64.b32encode(value.encode("utf-8")).decode("utf-8").replace("=", "!")


def run_4(args: argparse.Namespace):
    """vantage6-algorithm-tools 4.x, as the repositories' test.py do."""
    from vantage6.algorithm.tools.mock_client import MockAlgorithmClient

    ids = [org.id for org in args.organizations]
    client = MockAlgorithmClient(
        datasets=[
            [{"database": str(d.path), "db_type": d.db_type} for d in org.databases]
            for org in args.organizations
        ],
        module=args.module,
        organization_ids=ids,
        node_ids=ids,
    )
    task = client.task.create(
        input_={"method": args.method, "kwargs": args.kwargs}, organizations=[ids[0]]
    )
    return client.wait_for_results(task.get("id"))


def labels_in_order(organizations: list[Organization]) -> list[str]:
    labels: list[str] = []
    for org in organizations:
        labels += [d.label for d in org.databases if d.label not in labels]
    for org in organizations:
        missing = [label for label in labels if label not in {d.label for d in org.databases}]
        if missing:
            # The 5.x mock makes each dataframe at every organization.
            usage_error(f"organization {org.id} has no database labelled {', '.join(missing)}")
    return labels


def read_table(database: Database):
    import pandas as pd

    readers = {"csv": pd.read_csv, "parquet": pd.read_parquet, "excel": pd.read_excel}
    if database.db_type not in readers:
        usage_error(f"{database.path}: a {database.db_type} database needs --extract")
    return readers[database.db_type](database.path)


def run_5(args: argparse.Namespace):
    """vantage6-algorithm-tools 5.x: a MockNetwork session, as v6-glm-py's test does."""
    from vantage6.algorithm.mock import MockNetwork
    from vantage6.common.globals import ContainerEnvNames

    labels = labels_in_order(args.organizations)
    datasets = []
    for org in args.organizations:
        by_label = {d.label: d for d in org.databases}
        datasets.append(
            {
                label: {
                    "database": str(by_label[label].path)
                    if args.extract
                    else read_table(by_label[label]),
                    "db_type": by_label[label].db_type,
                }
                for label in labels
            }
        )
    network = MockNetwork(module_name=args.module, datasets=datasets)
    # MockNetwork numbers organizations and nodes 1..n, and finds the node a task goes to by
    # the organization id given (`get_node(org_id)` compares node ids): the ids asked for
    # become both.
    for node, org in zip(network.nodes, args.organizations):
        node.id_ = node.organization_id = org.id
        node.env[ContainerEnvNames.NODE_ID.value] = org.id
        node.env[ContainerEnvNames.ORGANIZATION_ID.value] = org.id
    client = network.user_client
    if args.extract:
        # `name` = the label: the mock node keeps a dataframe under its name but looks it up by
        # the label of its source database.
        frames = [
            client.dataframe.create(label=label, method=args.extract, name=label)
            for label in labels
        ]
    else:
        frames = [next(f for f in network.hq.dataframes if f["name"] == label) for label in labels]
    task = client.task.create(
        method=args.method,
        organizations=[args.organizations[0].id],
        arguments=args.kwargs,
        databases=[{"type": "dataframe", "dataframe_id": f["id"]} for f in frames],
    )
    return client.wait_for_results(task.get("id"))


def main():
    args = parse_args()
    if args.path is not None:
        sys.path.insert(0, str(args.path.resolve()))
    major = int(importlib.metadata.version("vantage6-algorithm-tools").split(".")[0])
    if major not in (4, 5):
        usage_error(f"vantage6-algorithm-tools {major}.x: only 4.x and 5.x are supported")
    if args.extract and major == 4:
        usage_error("--extract is a 5.x session step; 4.x reads its databases itself")
    for value in args.env:
        name, _, plain = value.partition("=")
        os.environ[name] = node_encoded(plain)
    # The 5.x mock points its session files at ./tmp/session: a folder of our own, removed.
    with tempfile.TemporaryDirectory(prefix="mock-oracle-") as workdir:
        os.chdir(workdir)
        with contextlib.redirect_stdout(sys.stderr):
            try:
                results = run_4(args) if major == 4 else run_5(args)
            except Exception as e:  # noqa: BLE001 (any failure of the algorithm)
                import traceback

                traceback.print_exc()
                print(f"mock_oracle: {args.method} failed: {e!r}", file=sys.stderr)
                sys.exit(1)
    if len(results) != 1:
        print(f"mock_oracle: the central task gave {len(results)} results", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(results[0]))


if __name__ == "__main__":
    main()
