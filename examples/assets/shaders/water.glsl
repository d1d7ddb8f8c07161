#version 330 core
in vec2 v_uv;
uniform sampler2D u_tiles;
uniform float u_time;
out vec4 o_color;
void main() {
    vec2 uv = v_uv;
    uv.x += sin(uv.y * 40.0 + u_time * 2.0) * 0.004;
    uv.y += cos(uv.x * 35.0 + u_time * 1.7) * 0.004;
    vec3 deep = vec3(0.05, 0.18, 0.32);
    o_color = vec4(mix(texture(u_tiles, uv).rgb, deep, 0.35), 0.9);
}
