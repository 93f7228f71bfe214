"""Reports of a session: the terminal summary, Markdown, HTML and their charts."""
