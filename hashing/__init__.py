"""The engine: streaming copy+hash pipeline and the content-addressed evidence store."""
