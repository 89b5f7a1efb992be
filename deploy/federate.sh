#!/bin/sh
# docker-compose.yml's `federate` step: on first start, Gütersloh founds the federation
# "Pegelverbund OWL" and invites Bielefeld and Herford, who join. A town that joined is
# marked in its data volume, so a restart of the compose project changes nothing.
set -eu
for town in bielefeld herford; do
    if [ -e "/towns/$town/federated" ]; then
        echo "$town is a member already"
        continue
    fi
    name=$(case "$town" in bielefeld) echo Bielefeld ;; herford) echo Herford ;; esac)
    invitation=$(urbanmesh invite --data-dir /towns/guetersloh --url http://guetersloh:8470 \
        --name "$name" --federation "Pegelverbund OWL")
    urbanmesh join --data-dir "/towns/$town" --url "http://$town:8470" "$invitation"
    touch "/towns/$town/federated"
done
