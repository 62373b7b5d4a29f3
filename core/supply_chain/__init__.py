"""supply_chain."""
