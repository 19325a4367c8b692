"""The corpus notebooks are inputs of the differential harness, not nbval tests: never collect them."""

collect_ignore = ["corpus"]
