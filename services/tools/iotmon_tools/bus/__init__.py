"""School-bus tooling: write a simulated fleet's files, replay events through the core."""
