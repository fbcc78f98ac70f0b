"""The sales example: split a CSV of orders, total it per region in parallel, combine."""
