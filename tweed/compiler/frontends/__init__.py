"""Front ends: one package per input format. Each validates against its versioned schema in
tweed/specs, parses into a small AST, and lowers the AST to IR."""
