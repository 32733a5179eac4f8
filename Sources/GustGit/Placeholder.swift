enum GustGitPlaceholder {}
