"""`audit eval`: placeholder until its issue lands."""
