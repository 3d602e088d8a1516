"""Each YAML artifact's document, one small module per artifact: the file's shape as plain data (dicts and lists in
the order they are written), built from values the environment computed (infragen.models). No arithmetic and no
defaults here: a module only places values. `yaml_tree` (infragen.render) writes every document the same way.
"""
