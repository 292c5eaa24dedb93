
set edit:completion:arg-completer[cijob] = { |@words|
    var index = (count $words)
    set index = (- $index 1)

    put (env _CLAP_IFS="\n" _CLAP_COMPLETE_INDEX=(to-string $index) CIJOB_COMPLETE="elvish" cijob -- $@words) | to-lines
}

