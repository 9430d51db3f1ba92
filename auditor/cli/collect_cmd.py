"""`audit collect`: placeholder until its issue lands."""
