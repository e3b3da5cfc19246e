"""Reading jobs: manifest files to a lazy, validated stream of Jobs. Every error names file:line."""
