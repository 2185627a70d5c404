"""Setup shared by the e2e tests."""

import pytest

# The JS harness holds checks several test modules share; pytest only rewrites the asserts of
# test modules and conftests, so register it to keep the detailed failure messages it had.
pytest.register_assert_rewrite("tests.e2e.js_harness")
