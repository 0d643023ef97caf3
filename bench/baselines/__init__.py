"""Earlier designs of ours that a bench row is measured against in the same run (the seed's
own handlers and seed-style ones are in bench/seed/)."""
