"""The local data privacy pipeline: classify columns, protect them, keep private values in an encrypted vault,
record ownership and consent on the ledger, and erase on request. Runs inside each organization; raw data never
leaves it."""
