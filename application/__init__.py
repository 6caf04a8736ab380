"""Use cases: the eventsourcing applications of each area, which run commands on the domain's
aggregates and record what they decide. They import domain/ only; adapters are given to them."""
