#version 330 core
in vec2 v_uv;
uniform sampler2D u_hdr;
uniform float u_exposure;
out vec4 o_color;
vec3 aces(vec3 x) {
    return clamp((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14), 0.0, 1.0);
}
void main() {
    vec3 c = texture(u_hdr, v_uv).rgb * u_exposure;
    o_color = vec4(pow(aces(c), vec3(1.0 / 2.2)), 1.0);
}
