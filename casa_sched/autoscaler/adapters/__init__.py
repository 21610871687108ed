"""Platform adapters: one module per serverless platform behind :class:`~.base.PlatformAdapter`."""
