"""Import-time stand-ins for the seed's Lambda modules, the baseline of the cold-start bench."""
