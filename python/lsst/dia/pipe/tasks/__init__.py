"""PipelineTasks: connections, configs and thin runQuantum/run adapters around the algorithm subpackages."""
