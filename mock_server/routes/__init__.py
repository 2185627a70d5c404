"""One router per logical host, plus the mock's control plane."""
