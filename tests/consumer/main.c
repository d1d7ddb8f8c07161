/* main.c - the smallest program using an installed asset_server. */
#include <asset_server.h>

#include <stdio.h>

int main(void) {
    asset_server_t *s = asset_server_create(NULL);
    if (s == NULL) {
        fprintf(stderr, "consumer: asset_server_create failed\n");
        return 1;
    }
    asset_server_destroy(s);
    printf("consumer: ok (%s)\n", asset_strerror(ASSET_OK));
    return 0;
}
