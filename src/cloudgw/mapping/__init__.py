"""The mapping service core (pure): which endpoint lives behind which gateway, what is effective,
and whether a source address may come from a given gateway."""
