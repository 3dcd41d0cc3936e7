"""The vantage6 algorithm store's own input schema, for tests/store.rs.

Usage: python store_schema.py FILE...   (each FILE a JSON submission)

Prints one line of JSON per file: what `AlgorithmInputSchema().validate(doc)` returns, `{}` for
a submission the store takes and the reasons otherwise. Run with the interpreter of a venv that
`scripts/stack up` makes (V6_STORE_SCHEMA_PYTHON_4 / V6_STORE_SCHEMA_PYTHON_5).
"""

import json
import sys
import warnings

# 5.0.3 passes marshmallow's deprecated `default=` (RemovedInMarshmallow4Warning) on stderr.
warnings.simplefilter("ignore")

from vantage6.algorithm.store.resource.schema.input_schema import (  # noqa: E402
    AlgorithmInputSchema,
)

for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as file:
        document = json.load(file)
    print(json.dumps(AlgorithmInputSchema().validate(document), sort_keys=True))
