"""Smart meters: interval consumption from cumulative registers, metric names, load profiles."""
