"""What the test softphones (``dialtone.services.softphone``) heard: recordings analysed."""
