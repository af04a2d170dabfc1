"""`doctor`: read-only checks of the server and the configuration, PASS, WARN or FAIL each."""
