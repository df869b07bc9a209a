"""What the command line shows people: consoles (rich), documents (HTML) and diagrams (SVG)."""
