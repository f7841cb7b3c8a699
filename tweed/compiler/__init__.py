"""The compiler: front ends (spec -> IR), passes (IR -> IR), exporters (IR -> spec)."""
