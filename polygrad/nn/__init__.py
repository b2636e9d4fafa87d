"""polygrad.nn: modules and functional ops of the tutorials."""
