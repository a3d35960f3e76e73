"""What the test softphones (``devtools.softphone``) heard: recordings analysed."""
