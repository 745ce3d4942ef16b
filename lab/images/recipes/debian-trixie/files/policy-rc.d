#!/bin/sh
# In a container no service starts behind its entrypoint: refuse every invoke-rc.d.
exit 101
