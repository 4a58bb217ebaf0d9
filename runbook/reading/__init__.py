"""Reading files the operator names: regular files only, bounded in size; YAML bounded in bytes, depth and aliases."""
