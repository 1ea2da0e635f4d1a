"""The HTTP side: the public app (unsubscribe pages, SNS) and the editor's preview server."""
