"""What every domain's assets share: the platform resource (settings to event logs,
catalog and engines), the trading-day partitions, and the wiring of the real stack's
services, which the CLI's ``stack`` commands start."""
