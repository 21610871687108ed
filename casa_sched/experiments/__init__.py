"""Experiments: replay a workload epoch by epoch under one or more policies (``casa simulate``)."""
