"""`audit trace`: placeholder until its issue lands."""
