"""Test fakes that ship with the tests, not in the wheel."""
