"""`audit check`: placeholder until its issue lands."""
