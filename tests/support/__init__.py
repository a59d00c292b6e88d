"""Test infrastructure shared by the test suites (servers, fresh databases)."""
