"""casa-profiler: measure a node's power curve with RAPL/IPMI/Prometheus meters, fit and publish it."""
