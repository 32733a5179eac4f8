enum GustBuildPlaceholder {}
