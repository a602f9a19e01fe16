"""Comparing a re-trained model with a golden file written by an earlier version."""

import numpy as np


def assert_retrained_like_golden(got, want, *, what="params"):
    """Bit for bit on the compiled engine (the golden files were written with it); on the numpy
    engine, which sums a split batch's gradient in another order, within rounding of the same run."""
    from betavae_np.nn import engine

    if engine.resolve("auto") == "compiled":
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5, err_msg=what)
