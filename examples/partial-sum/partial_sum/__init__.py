"""Example vantage6 algorithm packaged by cargo v6.

A node runs it through vantage6's 4.x wrapper, which imports this package (PKG_NAME) and calls
the function named in the task input, e.g. ``{"method": "partial_sum", "kwargs": {"column": "a"}}``.
"""

import pandas as pd
from vantage6.algorithm.tools.decorators import data

__all__ = ["partial_sum"]


@data(1)
def partial_sum(df: pd.DataFrame, column: str) -> dict:
    """Sum and count of the non-missing values of ``column`` in this node's data.

    Returns plain Python numbers (the wrapper serializes the result with ``json.dumps``,
    which rejects numpy scalars).
    """
    values = pd.to_numeric(df[column], errors="raise").dropna()
    # .item(): numpy scalar -> int for an integer column, float otherwise
    return {"sum": values.sum().item(), "count": int(values.count())}
