#version 330 core
in vec2 v_uv;
in vec4 v_color;
uniform sampler2D u_atlas;
out vec4 o_color;
void main() {
    vec4 texel = texture(u_atlas, v_uv);
    if (texel.a < 0.01) discard;
    o_color = texel * v_color;
}
