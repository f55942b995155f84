"""One module per fuzz target; each defines ``test_one_input(data: bytes) -> None``.

A target raises :class:`OracleError` (or lets any unexpected exception escape) when an oracle fails;
the documented exceptions of the code under test are caught inside the target.
"""


class OracleError(AssertionError):
    """An oracle of a fuzz target failed: the input is a bug (libFuzzer saves it as a crash)."""
