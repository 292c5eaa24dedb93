complete --keep-order --exclusive --command cijob --arguments "(CIJOB_COMPLETE=fish cijob -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
