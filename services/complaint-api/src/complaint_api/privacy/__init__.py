"""PIPL access and portability: everything complaint-api holds about one customer, as one document."""
